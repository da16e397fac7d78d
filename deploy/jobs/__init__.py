"""Small PyFlink jobs the deploy scripts and tests submit to check a cluster really runs Python."""
