"""Reports for people: briefs rendered from analytics figures."""
