"""`python -m console` runs the `recommender` command."""

from console.main import main

main()
