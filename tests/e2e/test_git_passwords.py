"""Account passwords with the real git client against a real server: a temporary password set
by an administrator is refused by Git with the reason, until the user changes it over REST;
a changed password takes effect for Git at once (the verified-password cache included)."""

from __future__ import annotations

from tests.e2e.conftest import GitwardServer, User


def test_temporary_password_on_git(any_gitward_server: GitwardServer, tmp_path):
    server = any_gitward_server
    user = server.create_user()
    workspace, slug = server.create_repository(user)
    server.seed(user, workspace, slug)
    # Git with the password works and is remembered ...
    server.git("clone", "-q", server.clone_url(workspace, slug, user), str(tmp_path / "before"))
    temporary = User(user.username, "temporary passphrase from the admin")
    r = server.api("PUT", "/rest/api/1.0/admin/users/credentials", auth=server.admin,
                   json={"name": user.username, "password": temporary.password,
                         "passwordConfirm": temporary.password})
    assert r.status_code == 204, r.text
    # ... but the old password no longer works, at once.
    result = server.git("clone", "-q", server.clone_url(workspace, slug, user),
                        str(tmp_path / "old"), check=False)
    assert result.returncode != 0
    # The temporary password is refused with the reason, which git shows.
    result = server.git("clone", "-q", server.clone_url(workspace, slug, temporary),
                        str(tmp_path / "temporary"), check=False)
    assert result.returncode != 0
    assert "must be changed" in result.stderr, result.stderr
    assert not (tmp_path / "temporary").exists()
    # Changing it (the one thing it may do) makes Git work with the new password.
    chosen = User(user.username, "the user's own new passphrase")
    r = server.api("PUT", "/rest/api/1.0/users/credentials", auth=temporary,
                   json={"oldPassword": temporary.password, "password": chosen.password,
                         "passwordConfirm": chosen.password})
    assert r.status_code == 204, r.text
    server.git("clone", "-q", server.clone_url(workspace, slug, chosen), str(tmp_path / "after"))
    result = server.git("clone", "-q", server.clone_url(workspace, slug, temporary),
                        str(tmp_path / "temporary-again"), check=False)
    assert result.returncode != 0
