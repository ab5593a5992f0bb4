"""``python -m selfplay_gym.serve --model DIR``: the server without the CLI wiring."""

from selfplay_gym.serve.main import main

raise SystemExit(main())
