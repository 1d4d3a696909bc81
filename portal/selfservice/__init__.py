"""The participant's own pages (/me): what is shared, consents, who looked, security."""
