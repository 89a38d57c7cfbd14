"""Cross-market analysis: aligned price series, correlation matrix, groups, heatmap."""
