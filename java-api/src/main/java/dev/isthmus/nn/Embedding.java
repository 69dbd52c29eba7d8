package dev.isthmus.nn;

import dev.isthmus.backend.DType;
import dev.isthmus.ops.Indexing;
import dev.isthmus.tensor.Generator;
import dev.isthmus.tensor.Tensor;

/**
 * A lookup table, as {@code torch.nn.Embedding}: {@code weight} (num, dim), initialised N(0, 1);
 * int64 ids of any shape map to rows, giving ids.shape + [dim].
 */
public class Embedding extends Module {
    public final long numEmbeddings, embeddingDim;
    public final Tensor weight;

    public Embedding(long numEmbeddings, long embeddingDim, Generator gen) {
        this.numEmbeddings = numEmbeddings;
        this.embeddingDim = embeddingDim;
        this.weight = registerParameter("weight", Init.normal(Tensor.empty(DType.FLOAT32, numEmbeddings, embeddingDim), 0, 1, gen));
    }

    @Override public Tensor forward(Tensor ids) { return Indexing.embedding(ids, weight); }

    @Override protected String extraRepr() { return numEmbeddings + ", " + embeddingDim; }
}
