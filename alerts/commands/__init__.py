"""Sub-commands of ``socflow``; each module exposes ``register(subparsers)``."""
