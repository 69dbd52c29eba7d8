package dev.isthmus.data;

/** One labelled image: a sample of a classification data set, before or after transforms. */
public record Example(Image image, int label) {}
