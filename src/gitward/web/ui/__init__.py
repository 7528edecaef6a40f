"""The web interface: server-rendered pages (Jinja2), their sessions and CSRF checks.

Mounted as the fallback surface: every path that is not REST, OAuth, the root's own or a
Git smart-HTTP path is a page (web/app.py `is_git_path`).
"""
