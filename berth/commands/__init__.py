"""One module per `berth` subcommand (or group of closely related ones); see berth.cli."""
