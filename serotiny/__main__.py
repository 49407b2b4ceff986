"""``python -m serotiny`` runs the serotiny command line."""

from serotiny.cli.main import main

if __name__ == "__main__":
    main()
