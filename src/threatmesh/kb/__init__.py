"""Knowledge packs (ATT&CK, MISP galaxies, CISA KEV) and warninglists."""
