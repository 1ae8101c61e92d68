"""Entry point: python -m services.monitor (a faust worker, web server off)."""
import sys

from plumbing import logs

from .app import app


def main() -> None:
    logs.setup("monitor")
    sys.argv = [sys.argv[0], "worker", "--without-web", "--loglevel", "warn"]
    app.main()


if __name__ == "__main__":
    main()
