"""What comes in, made clean: articles and feeds, subscriber rows, bounce reports."""
