package dev.isthmus.models.hsbm;

/**
 * A hypergraph drawn from an HSBM together with the communities it was drawn with.
 *
 * @param model the model it was drawn from
 * @param labels each node's community, 0..k-1 (not a copy: read only)
 * @param graph the hyperedges
 */
public record PlantedHypergraph(HsbmModel model, int[] labels, Hypergraph graph) {
    public PlantedHypergraph {
        if (labels.length != graph.nodes()) {
            throw new IllegalArgumentException("planted hypergraph: " + labels.length + " labels for " + graph.nodes() + " nodes");
        }
        if (graph.edgeSize() != model.d()) {
            throw new IllegalArgumentException("planted hypergraph: edges of " + graph.edgeSize() + " nodes, model d=" + model.d());
        }
    }

    public int nodes() { return graph.nodes(); }
}
