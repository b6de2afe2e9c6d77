"""The four Leadflow services; they never import each other and talk only through Kafka."""
