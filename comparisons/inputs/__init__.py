"""What the study trains on: the lesson's synthetic data, CSV files, standardisation."""
