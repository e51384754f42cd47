# bench/plot.gp: draws bench/results.png from the data files bench/run.py writes into datadir.
# gnuplot -e "datadir='DIR'; outfile='results.png'; maintitle='...'" bench/plot.gp
set terminal pngcairo size 1600,1100 font "sans,10"
set output outfile
set multiplot layout 2,2 title maintitle font "sans,13"
set datafile missing "NaN"
set style data histograms
set style histogram errorbars gap 2 lw 1
set style fill solid 0.8 border -1
set grid ytics
set key top right
set yrange [0:*]
set xtics nomirror
set bars 0.5

set title "Bulk transfer, MB/s (median, bar = min..max)"
plot datadir.'/bulk.dat' using 2:3:4:xtic(1) title columnhead(2), \
     '' using 5:6:7 title columnhead(5), \
     '' using 8:9:10 title columnhead(8), \
     '' using 11:12:13 title columnhead(11)

set title "Connections per second (AES-128-GCM)"
set xtics rotate by -30 font "sans,8"
plot datadir.'/conn.dat' using 2:3:4:xtic(1) title "1 client", \
     '' using 5:6:7 title "2 clients in parallel"
set xtics norotate font "sans,10"

set title "64-byte ping-pong latency, µs (AES-128-GCM)"
set logscale y
set yrange [*:*]
plot datadir.'/ping.dat' using 2:3:4:xtic(1) title "p50", \
     '' using 5:6:7 title "p99"
unset logscale y
set yrange [0:*]

set title "CPU s per GiB downloaded, client + proxy processes (AES-128-GCM)"
plot datadir.'/cpu.dat' using 2:3:4:xtic(1) title "user+system s/GiB"
unset multiplot
