"""The ``ferfast`` subcommands, one module each; ``ferfast.cli`` builds the parser from them."""
