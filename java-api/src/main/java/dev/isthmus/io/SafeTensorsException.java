package dev.isthmus.io;

import java.io.IOException;
import java.nio.file.Path;

/** A safetensors file that cannot be read: the message names the file and what is wrong with it. */
public final class SafeTensorsException extends IOException {
    private static final long serialVersionUID = 1L;

    public SafeTensorsException(Path file, String problem) {
        super(file + ": " + problem);
    }

    public SafeTensorsException(Path file, String problem, Throwable cause) {
        super(file + ": " + problem, cause);
    }
}
