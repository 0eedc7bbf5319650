"""Writing results: tables, figures, prose helpers, environment.json, the --out folder, consistency checks."""
