from parallel_scaling.cli import main

raise SystemExit(main())
