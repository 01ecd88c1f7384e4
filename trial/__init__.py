"""The trial: design, people, randomisation, cases and images, audit."""
