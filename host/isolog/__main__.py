from isolog.cli import main

raise SystemExit(main())
