"""The statistician's analysis: pure statistics, tidy datasets, reports and exports."""
