"""Reports: Pareto maths (``reports.pareto``) apart from rendering (``reports.html``)."""
