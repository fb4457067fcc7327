from gcs_model_sync.cli import main

raise SystemExit(main())
