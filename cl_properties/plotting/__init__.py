"""Pictures: dataset example grids."""

from cl_properties.plotting.examples import save_example_grid, split_channels

__all__ = ["save_example_grid", "split_channels"]
