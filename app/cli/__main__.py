import sys

from app.cli import main

# Guarded: `serve --workers N` spawns processes that import the main module again.
if __name__ == "__main__":
    sys.exit(main())
