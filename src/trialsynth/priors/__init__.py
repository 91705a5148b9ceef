"""Prior objects, the PRIOR grammar and the Turner et al. 2015 table."""
