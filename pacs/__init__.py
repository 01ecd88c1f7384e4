"""DICOM networking with the sites' systems: the listener, query/retrieve, STOW-RS, reports back."""
