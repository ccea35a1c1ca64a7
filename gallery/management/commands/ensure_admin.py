"""Make sure an admin account exists (used by ``make run`` and the container entry point).

With ``DJANGO_SUPERUSER_USERNAME`` / ``_PASSWORD`` / ``_EMAIL`` set (Django's own variables), that
account is created if missing. Otherwise, when no superuser exists yet, ``admin`` is created with a
random password, which is printed and kept in ``var/admin-credentials.txt`` (mode 600).
"""

from __future__ import annotations

import os
import secrets

from django.conf import settings
from django.contrib.auth import get_user_model
from django.core.management.base import BaseCommand, CommandError


class Command(BaseCommand):
    help = "Create the first admin account from DJANGO_SUPERUSER_* or with a generated password."

    def add_arguments(self, parser):
        parser.add_argument(
            "--only-from-env",
            action="store_true",
            help="do nothing unless DJANGO_SUPERUSER_USERNAME is set (no generated password; production)",
        )

    def handle(self, *args, only_from_env=False, **options):
        User = get_user_model()
        username = os.environ.get("DJANGO_SUPERUSER_USERNAME", "").strip()
        if username:
            if User.objects.filter(username=username).exists():
                self.stdout.write(f"Admin account: {username} (exists; password unchanged)")
                return
            password = os.environ.get("DJANGO_SUPERUSER_PASSWORD", "")
            if not password:
                raise CommandError("DJANGO_SUPERUSER_USERNAME is set but DJANGO_SUPERUSER_PASSWORD is empty.")
            User.objects.create_superuser(username, os.environ.get("DJANGO_SUPERUSER_EMAIL", ""), password)
            self.stdout.write(f"Admin account: {username} (created; password from DJANGO_SUPERUSER_PASSWORD)")
            return
        if only_from_env:
            self.stdout.write("Admin account: DJANGO_SUPERUSER_USERNAME not set; none created.")
            return
        existing = list(User.objects.filter(is_superuser=True).values_list("username", flat=True))
        creds = settings.VAR_DIR / "admin-credentials.txt"
        if existing:
            hint = f"; generated credentials are in {creds}" if creds.exists() else ""
            self.stdout.write(f"Admin account(s): {', '.join(existing)} (exist; password unchanged{hint})")
            return
        password = secrets.token_urlsafe(12)
        User.objects.create_superuser("admin", "", password)
        settings.VAR_DIR.mkdir(parents=True, exist_ok=True)
        creds.write_text(f"username: admin\npassword: {password}\n")
        creds.chmod(0o600)
        self.stdout.write(f"Admin account created: username admin, password {password} (also in {creds})")
