"""``manage.py health``: the ``/readyz`` checks from the command line (used by ``make run``).

Prints one line per component and exits 1 when a component named in ``--require`` fails, so a
start-up script stops with a clear reason (e.g. a read-only media directory) before serving.
"""

from __future__ import annotations

import json

from django.core.management.base import BaseCommand, CommandError

from gallery import health


class Command(BaseCommand):
    help = "Check database, media storage, broker and worker (each within about a second)."

    def add_arguments(self, parser) -> None:
        parser.add_argument("--only", default=",".join(health.COMPONENTS),
                            help="comma-separated components to check (default: all)")
        parser.add_argument("--require", default="",
                            help="comma-separated components that must pass (exit 1 otherwise)")
        parser.add_argument("--json", action="store_true", help="print the results as JSON")

    def handle(self, *args, only: str, require: str, **options) -> None:
        names = tuple(n for n in only.split(",") if n)
        unknown = set(names) - set(health.COMPONENTS)
        if unknown:
            raise CommandError(f"unknown component(s): {', '.join(sorted(unknown))}")
        results = health.run_checks(names)
        if options["json"]:
            self.stdout.write(_json_dumps(results))
        else:
            for name, result in results.items():
                state = "ok" if result["ok"] else "FAILED"
                self.stdout.write(f"{name}: {state} ({result['detail']}, {result['ms']:.0f} ms)")
        failed = [n for n in require.split(",") if n and not results.get(n, {}).get("ok")]
        if failed:
            raise CommandError(f"not ready: {', '.join(failed)}")


def _json_dumps(value) -> str:
    return json.dumps(value, sort_keys=True)
