"""One module per pane of the workflow."""
