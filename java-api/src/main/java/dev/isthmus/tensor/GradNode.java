package dev.isthmus.tensor;

import java.util.List;

/** The record of the op that produced a tensor, as autograd sees it (implemented by the autograd layer). */
public interface GradNode {
    String opName();

    List<Tensor> inputs();
}
