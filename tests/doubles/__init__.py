"""In-process doubles of the peers, for the failures a real peer cannot be made to produce."""
