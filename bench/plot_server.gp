# bench/plot_server.gp: draws bench/results-server.png (the server section) from the data file
# bench/serverbench.py writes: per path, median/min/max of each figure relative to nginx's own TLS.
# gnuplot -e "datafile='F'; outfile='results-server.png'; maintitle='...'" bench/plot_server.gp
set terminal pngcairo size 1100,600 font "sans,10"
set output outfile
set title maintitle font "sans,12"
set style data histograms
set style histogram errorbars gap 2 lw 1
set style fill solid 0.8 border -1
set grid ytics
set key top right
set yrange [0:*]
set bars 0.5
set ylabel "relative to nginx's own TLS (1.0)"
plot datafile using 2:3:4:xtic(1) title "bulk MB/s", \
     '' using 5:6:7 title "keep-alive requests/s", \
     '' using 8:9:10 title "new connections/s", \
     '' using 11:12:13 title "server CPU s per GiB (lower is better)"
