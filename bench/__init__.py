"""Side-by-side benchmarks of gcs-model-sync against rclone, gcloud and the seed's way."""
