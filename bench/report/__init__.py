"""Reports: run records -> tables (with statistics) and figures."""
