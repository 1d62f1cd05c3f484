"""mmbot package."""
