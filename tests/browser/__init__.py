"""Frontend checks; a package so that their server and browser live only while these tests run."""
