"""The knowledge base: data files, and the code that loads, normalises and searches them."""
