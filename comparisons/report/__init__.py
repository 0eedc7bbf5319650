"""The human report (report.md) and the README's generated blocks, built from the tables in a results folder."""
