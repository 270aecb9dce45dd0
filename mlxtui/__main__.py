from mlxtui.cli import main

raise SystemExit(main())
