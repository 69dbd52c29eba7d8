package dev.isthmus.nn;

/** The window settings that {@link MaxPool2d} and {@link AvgPool2d} share: square kernel, stride, padding. */
public abstract sealed class Pool2d extends Module permits MaxPool2d, AvgPool2d {
    public final int kernel, stride, padding;

    Pool2d(int kernel, int stride, int padding) {
        this.kernel = kernel;
        this.stride = stride;
        this.padding = padding;
    }

    @Override protected String extraRepr() {
        return "kernel_size=" + kernel + ", stride=" + stride + ", padding=" + padding;
    }
}
