package dev.isthmus.data;

import java.io.IOException;
import java.nio.file.Path;

/**
 * A data set that cannot be loaded: a file that is missing, truncated or not what it claims to be, or
 * a data set that is not installed. The message names the file (or folder) and says what is wrong,
 * and for a missing data set how to install it or where to point the loader instead.
 */
public final class DataException extends IOException {
    private static final long serialVersionUID = 1L;

    public DataException(String message) {
        super(message);
    }

    public DataException(Path file, String problem) {
        super(file + ": " + problem);
    }

    public DataException(Path file, String problem, Throwable cause) {
        super(file + ": " + problem, cause);
    }
}
