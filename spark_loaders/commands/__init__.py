"""One module per ``condo`` sub-command, each exposing ``register(subparsers)``."""
