"""The fetch stage: raw scans of each dataset (the embedded demo, IXI, HCP, a lab's folder) and downloaded weights."""
