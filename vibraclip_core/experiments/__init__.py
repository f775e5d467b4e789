"""The book's experiments, shared by several chapters and by the model card: training variants,
library-size curves, realignment, transfer levers, measured-set libraries, result tables,
figures."""
