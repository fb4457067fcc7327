from gcs_model_sync.cli import run

run()
