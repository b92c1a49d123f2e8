"""One module per ``sete-vsr`` subcommand (see :mod:`sete_vsr.cli`)."""
