"""Tables (markdown, CSV, LaTeX), plots and the self-contained HTML report."""
