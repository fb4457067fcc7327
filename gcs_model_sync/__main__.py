from gcs_model_sync.cli.main import run

run()
